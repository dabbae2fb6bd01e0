"""The run lifecycle: a run config becomes a queued run, a worker process trains it, and its folder and the job
store say where it stands.

    submission  validate → pre-flight → freeze the data → store.submit: the one way in (UI, CLI, API)
    store       SQLite: identity, queue order, state and outcome, the worker's pid; conditional transitions
    launcher    a warm process that forks workers with the training stack already imported
    worker      `python -m workbench.runs.worker RUN_DIR`: trains, writes the run folder
    files       the run folder's layout and its atomic writes
    chaining    runs that start where an earlier run finished
    preflight   what stops a run on this machine, checked before Start and again in the worker
    summary     a run's key figures for comparison

Nothing is imported here: each module is imported by name, so importing one part never pulls in the others.
"""
