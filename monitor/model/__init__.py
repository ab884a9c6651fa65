"""Value types only: what sources observe, what checks find, what an audit reports.

Nothing here does I/O or imports from the engine, the store or the daemon; every other
package may import from here.
"""
