"""A RunConfig executed into a run folder: prepare, train, resume, restore, and the folder's files."""
