"""Domain core: relying parties (tenants) and the audit log; the vendor APIs are adapters onto it."""
