# Shortcuts for the course's commands; each is a thin wrapper over
# `cargo workbook …` or `cargo test`, so `just` is never required.

# List the recipes.
default:
    @just --list

# Read the book at http://127.0.0.1:3000/ (installs mdBook on first use).
serve:
    cargo workbook serve

# Build the book as static HTML into book/book/.
build:
    cargo workbook build

# Grade one lab (e.g. `just grade 02`) or all of them.
grade lab="":
    cargo workbook grade {{lab}}

# Run every suite against the reference solutions.
test:
    cargo test

# Everything CI checks.
verify:
    cargo workbook verify
