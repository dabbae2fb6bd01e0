"""Open the Workbench in a browser: python app.py [--host 127.0.0.1] [--port 7860] [--auth user:password] [--share]."""

if __name__ == "__main__":
    # Imported here, not at the top: helper processes started with "spawn" re-run this file's top level.
    from workbench.ui.serving import parse_args

    options = parse_args()  # a refused command (a public server without a password) ends before Gradio loads

    from workbench.ui.app import main

    main(options)
