"""Storage: the one door to every filesystem. Listing, reading, writing, renaming and
deleting user data (input, side inputs, output, the code folder) happen here and nowhere
else, for local folders, mounted `pvc://` claims and pyarrow filesystems alike; the code
archive that `prs submit` packs and pods unpack lives here too. It may use only the step
model."""
