"""`loyalty-hub members import`: a thin command over hubside.import_members."""

from __future__ import annotations

from pathlib import Path

import click


def _operator() -> str:
    from sync.hub.cli import _operator as who

    return who()


@click.group()
def members() -> None:
    """The chain's members at the hub: bring existing ones in from Excel."""


@members.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check the file and say what would be imported; change nothing.")
@click.option("--errors", "errors_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write the error workbook (default: FILE.errors.xlsx beside FILE).")
@click.option("--store", default=None, help="The home store of rows whose store column is empty (or absent).")
@click.option("--by", default=_operator, show_default="the user running it",
              help="Who imports (audited; the opening balance entries' actor).")
@click.option("--quiet", is_flag=True, help="No progress bar or summary line on stderr.")
@click.pass_obj
def members_import(db_url: str, file: Path, dry_run: bool, errors_path: Path | None, store: str | None, by: str,
                   quiet: bool) -> None:
    """Import the members in FILE (.xlsx; columns named in Persian or English: name,
    mobile, birth date, card, tier, opening balance, referrer, store). All or nothing:
    any bad row imports nothing and is listed, with its column and the reason, in the
    error workbook."""
    from ledger.progress import progress_for
    from sync.hub.cli import _hub
    from sync.hub.memberimport.hubside import describe, import_members

    report = import_members(_hub(db_url), file, by=by, store=store, dry_run=dry_run, errors_path=errors_path,
                            progress=lambda label: progress_for(label, quiet=quiet))
    for line in describe(report):
        click.echo(line)
