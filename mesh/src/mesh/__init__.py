"""Souk's service mesh control plane: CA, call policy and xDS server for Envoy sidecars."""
