"""``python -m ims_repo``: the ``ims-repo`` command."""

from ims_repo.faces.cli import main

if __name__ == "__main__":
    main(prog_name="ims-repo")
