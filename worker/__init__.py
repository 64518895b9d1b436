"""copygen's worker side: the Celery app and tasks, and the plain functions they call.

Layers, each module importing only those below it (import-linter checks it):

tasks       copygen.generate_chunk / submit_job / reconcile / fire_promo: thin shells
celery_app  the app, its worker signals, `copygen worker` / `copygen beat`, `celery -A worker.celery_app`
schedule    promo schedule files, beat's scheduler, one job per (schedule, slot)
submit      submit / submit_job / wait_for_job for a merchant backend and the CLI
reconcile   re-enqueue lost or lapsed chunks, settle finished jobs
dispatch    execute_chunk (the one way a chunk runs, with limits and retries); run here or send
pipeline    run_chunk: claim, generate, filter, regenerate, rank, store (no Celery)
filters     the checks, score and ranking of a product's variants
runtime     a process's engines, models, lexicon, sending app and unsaved copy
config      task names, queues, the Celery configuration

Importing this package loads no model, opens no connection and reads no settings.
"""
