#!/bin/sh
# The Secrets the manifests name, with values made here at random (none is committed).
# Run once per cluster before `kubectl apply -k overlays/<name>`; keep the values in
# your secret store (or replace this with ExternalSecrets pointing at it).
set -eu
NS=souk
secret() { openssl rand -hex 24; }
kubectl -n "$NS" create secret generic souk-client-secrets \
  --from-literal=souk-cli="$(secret)" \
  --from-literal=bff-web="$(secret)" \
  --from-literal=orders="$(secret)"
kubectl -n "$NS" create secret generic souk-db-catalog --type=kubernetes.io/basic-auth --from-literal=username=souk_catalog --from-literal=password="$(secret)"
kubectl -n "$NS" create secret generic souk-db-inventory --type=kubernetes.io/basic-auth --from-literal=username=souk_inventory --from-literal=password="$(secret)"
kubectl -n "$NS" create secret generic souk-db-orders --type=kubernetes.io/basic-auth --from-literal=username=souk_orders --from-literal=password="$(secret)"
kubectl -n "$NS" create secret generic souk-db-billing --type=kubernetes.io/basic-auth --from-literal=username=souk_billing --from-literal=password="$(secret)"
kubectl -n "$NS" create secret generic souk-db-notifications --type=kubernetes.io/basic-auth --from-literal=username=souk_notifications --from-literal=password="$(secret)"
kubectl -n "$NS" create secret generic souk-db-bff-mobile --type=kubernetes.io/basic-auth --from-literal=username=souk_bff_mobile --from-literal=password="$(secret)"
kubectl -n "$NS" create secret generic souk-db-order-history --type=kubernetes.io/basic-auth --from-literal=username=souk_order_history --from-literal=password="$(secret)"
kubectl -n "$NS" create secret generic souk-db-bff-web --type=kubernetes.io/basic-auth --from-literal=username=souk_bff_web --from-literal=password="$(secret)"
kubectl -n "$NS" create secret generic souk-db-identity --type=kubernetes.io/basic-auth --from-literal=username=souk_identity --from-literal=password="$(secret)"
kubectl -n "$NS" create secret generic souk-redis --from-literal=redis-password="$(secret)"
