"""The try-on service (FastAPI): jobs with ids, progress and stored results, run off the event loop.

    mvvton serve                                   # embedded: worker thread(s) + SQLite job store
    mvvton serve --queue redis://127.0.0.1:6379/0  # API only; run `mvvton worker --queue ...` processes
    curl -F person=@person.jpg -F garment_front=@front.jpg -F garment_back=@back.jpg \\
        http://127.0.0.1:8000/v1/jobs

Modules: `app` (routes, `create_app`), `jobs` (parameters and the runner around a pipeline), `store` (SQLite job
table + content-addressed files, `JobStore`), `workers` (threads or RQ over Redis), `middleware` (request ids,
upload limit, API key), `metrics` (Prometheus), `errors` (typed errors and the error JSON shape).
See docs/usage.md, section "Service".
"""
