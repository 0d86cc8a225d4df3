# Shortcuts for the course's commands; each is a thin wrapper over
# `cargo workbook …` or `cargo test`, so `just` is never required.

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

# Run every suite against the reference solutions.
test:
    cargo test

# Everything CI checks.
verify:
    cargo workbook verify

# List a lab's classic mistakes (e.g. `just mistakes 02`), or all labs'.
mistakes lab="":
    cargo workbook mistakes {{lab}}

# Prove the suites catch the classic mistakes (5 runs each).
mistakes-run lab="":
    cargo workbook mistakes {{lab}} --run

# Time the student's edit → test loop in every lab.
measure:
    cargo workbook measure

# Rewrite the checksum manifests after changing tests/ or a lab on purpose.
manifest:
    cargo workbook manifest

# Write the student repository (no solutions, GitHub Classroom grading) to DIR.
handout dir:
    cargo workbook handout {{dir}}
