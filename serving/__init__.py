"""The capstone's server: a student's GPT and digit classifier behind HTTP, with one web page.

Course tooling, not the framework: it imports `tinytorch` (whichever package is first on the
path: the student's, or the course's reference) and Starlette/uvicorn, nothing of tito.

    python -m serving --models capstone-models --host 127.0.0.1 --port 8000

`tito capstone serve` runs exactly that on the student's package. See `serving/app.py` for
the routes, the limits and the scheduler that batches the streams.
"""
