"""Page assembly, sign-in and checkout, over ports the adapters implement."""
