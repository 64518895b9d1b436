"""copygen's worker side: the Celery app and tasks, and the plain functions they call.

Layers, each module importing only those below it (import-linter checks it):

tasks       copygen.generate_chunk / submit_job / reconcile / fire_promo: thin shells
celery_app  the app, its worker signals, `copygen worker` / `copygen beat`, `celery -A worker.celery_app`
schedule    promo schedule files, beat's scheduler, one job per (schedule, slot)
submit      submit / submit_job / wait_for_job for a merchant backend and the CLI
reconcile   re-enqueue lost or lapsed chunks, settle finished jobs
dispatch    execute_chunk (the one way a chunk runs, with limits and retries); run here or send
pipeline    run_chunk: claim, generate candidates, choose, store (no Celery)
selection   score a product's candidates and keep the k best   |  runtime: a process's engines,
filters     the checks a copy must pass (flags)                 |  models, lexicon, sending app, unsaved copy
config      task names, queues, the Celery configuration

Importing this package loads no model, opens no connection and reads no settings.
"""
