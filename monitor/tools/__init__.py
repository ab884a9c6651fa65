"""Tools around the product: traffic generators, the simulator and the backtest.

They import the product; the product never imports them (the CLI loads them lazily).
"""
