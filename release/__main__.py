"""`python -m release` runs the command line."""

from release.cli import main

if __name__ == "__main__":
    main()
