"""Analytics API (``/api/v1/analytics``): revenue, RFM, clusters and customer views over
the read models, each filtered by the caller's network scope."""
