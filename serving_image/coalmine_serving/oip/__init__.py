"""The Open Inference Protocol V2 over gRPC: the service definition and its servicer."""
