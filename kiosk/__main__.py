from kiosk.cli import run_main

run_main()
