"""The engine between sources and store: runs the checks over observations (``audit``,
``parallel``), keeps hourly rollups, loads the series the volume check judges.
"""
