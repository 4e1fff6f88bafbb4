"""Raw ingestion: staging lines into typed tables with quarantine, stable id maps, validation."""
