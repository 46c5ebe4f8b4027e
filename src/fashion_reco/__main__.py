"""``python -m fashion_reco`` runs the CLI."""

from fashion_reco.cli import main

main()
