"""The simulator's XML: ServiceRequest bodies parsed into typed requests, ServiceResponses built."""
