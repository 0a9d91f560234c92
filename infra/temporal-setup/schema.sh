#!/bin/sh
# One-shot job (temporalio/admin-tools): create Temporal's two databases on PostgreSQL if
# they are missing, then bring both schemas up to the versions this admin-tools image
# ships. Safe to run on every `docker-compose up`: `create` tolerates an existing
# database, `setup-schema -v 0.0` only initialises an empty one, and `update-schema`
# applies only the versions not yet applied. This is what the deprecated auto-setup image
# did inside the server container; as its own job it runs once, before the server starts.
set -eu

tool() {
  temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$DB_PORT" -u "$POSTGRES_USER" "$@"
}

for db in temporal temporal_visibility; do
  tool --db "$db" create || echo "database $db exists"
done

# setup-schema -v 0.0 refuses a database that already has a schema: that is expected on
# every run but the first.
tool --db temporal setup-schema -v 0.0 || echo "temporal schema already initialised"
tool --db temporal update-schema -d /etc/temporal/schema/postgresql/v12/temporal/versioned
tool --db temporal_visibility setup-schema -v 0.0 || echo "visibility schema already initialised"
tool --db temporal_visibility update-schema -d /etc/temporal/schema/postgresql/v12/visibility/versioned
echo "Temporal schemas are up to date"
