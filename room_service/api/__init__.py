"""The gRPC layer: servicer, conversions and the error table. Only it imports generated code."""
