"""copygen's worker side: the Celery app and tasks, and the plain functions they call.

celery_app  the app (JSON only, late ack, prefetch 1, no results) and `celery -A worker.celery_app`
tasks       copygen.generate_chunk / submit_job / reconcile / fire_promo: thin shells
pipeline    run_chunk: claim, generate, filter, regenerate, rank, store (no Celery)
filters     the checks, score and ranking of a product's variants
submit      submit_job / wait_for_job for a merchant backend and the CLI
reconcile   re-enqueue lost or lapsed chunks, settle finished jobs
schedule    promo schedule files, beat entries, one job per (schedule, slot)
runtime     per-process engine, Generator and lexicon

Importing this package loads no model, opens no connection and reads no settings.
"""
