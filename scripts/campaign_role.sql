-- A least-privilege PostgreSQL role for campaign tools: it may read the four copy views
-- (copy_job_variants, copy_best_variants, copy_latest_variants, copy_approved_variants) and nothing else. It cannot read
-- the tables behind them, write anywhere, or create objects in the schema. Its sessions are also
-- read-only by default (default_transaction_read_only), but the grants alone forbid every write.
--
-- Run it in the copy store's database, as the user that ran the migrations (the owner of the
-- views), after `copygen migrate`, and again after any migration that adds a view:
--
--   psql "postgresql://copygen@db-host/copygen" -v role=campaign -f scripts/campaign_role.sql
--   psql "postgresql://copygen@db-host/copygen" -c '\password campaign'
--
-- `role` defaults to campaign. The script takes no password: set it with psql's \password, which
-- sends only a SCRAM hash, so the password is never in a file, a command line or the server log.
-- It is idempotent: running it again changes nothing. To remove the role:
--   REASSIGN OWNED BY campaign TO copygen; DROP OWNED BY campaign; DROP ROLE campaign;

\set ON_ERROR_STOP on
\if :{?role}
\else
  \set role campaign
\endif

SELECT format('CREATE ROLE %I LOGIN', :'role')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') \gexec

-- no special powers, whatever the role had before
SELECT format('ALTER ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS',
              :'role') \gexec
SELECT format('ALTER ROLE %I IN DATABASE %I SET default_transaction_read_only = on',
              :'role', current_database()) \gexec

-- nothing on the tables (also undoing any earlier, broader grant), SELECT on the views only
SELECT format('REVOKE ALL ON ALL TABLES IN SCHEMA public FROM %I', :'role') \gexec
SELECT format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM %I', :'role') \gexec
SELECT format('REVOKE CREATE ON SCHEMA public FROM %I', :'role') \gexec
SELECT format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), :'role') \gexec
SELECT format('GRANT USAGE ON SCHEMA public TO %I', :'role') \gexec
SELECT format('GRANT SELECT ON copy_job_variants, copy_best_variants, copy_latest_variants, '
              'copy_approved_variants TO %I', :'role') \gexec
