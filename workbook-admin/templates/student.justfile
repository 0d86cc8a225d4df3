# Shortcuts for the course's commands; each is a thin wrapper over
# `cargo workbook …`, so `just` is never required.

# List the recipes.
default:
    @just --list

# Grade one lab (e.g. `just grade 02`) or all of them.
grade lab="":
    cargo workbook grade {{lab}}

# Grade a lab again each time you save one of its files.
watch lab="":
    cargo workbook watch {{lab}}

# The next hint for a lab's next TODO (e.g. `just hint 02`).
hint lab:
    cargo workbook hint {{lab}}

# Is this machine ready for the labs?
doctor:
    cargo workbook doctor

# Remove IPC objects and processes that interrupted tests left behind.
clean:
    cargo workbook clean

# Read the book at http://127.0.0.1:3000/ (installs mdBook on first use).
serve:
    cargo workbook serve

# Build the book as static HTML into book/book/.
build:
    cargo workbook build
