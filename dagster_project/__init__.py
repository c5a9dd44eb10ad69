"""lendseg: an orchestrated DuckDB warehouse that segments corporate and project-finance lending clients."""
