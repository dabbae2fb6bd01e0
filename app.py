"""Open the Workbench in a browser: python app.py [--host 127.0.0.1] [--port 7860] [--auth user:password]."""

from workbench.ui.app import main

if __name__ == "__main__":
    main()
