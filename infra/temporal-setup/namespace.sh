#!/bin/sh
# One-shot job (temporalio/admin-tools): create Linkway's namespace once the server is up.
# Idempotent: an existing namespace is left as it is (change its retention with
# `temporal operator namespace update`, see docs/production.md).
set -eu

if temporal operator namespace describe --namespace "$NAMESPACE" > /dev/null 2>&1; then
  echo "namespace $NAMESPACE exists"
else
  temporal operator namespace create --namespace "$NAMESPACE" --retention "$RETENTION"
  echo "namespace $NAMESPACE created"
fi
