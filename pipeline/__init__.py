"""News structured-data extraction pipeline stages."""
