"""Languages as data: specs, their judge templates and prompt files, and the scaffold."""
