"""The registry CSV import: a batch job that bulk-loads an operator's existing
registrations into the store (`simguard registry import`), beside the
consumers in `workers/`, whose registry and rules it uses."""
