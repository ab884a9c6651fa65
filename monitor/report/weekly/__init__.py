"""The weekly audit report: loads a week from the store, builds its view, renders pages."""
