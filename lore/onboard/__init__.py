"""Getting a warehouse into LORE: drafting a semantic layer from a warehouse (`lore init`), importing one."""
