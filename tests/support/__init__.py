"""What tests start and steer: processes on free ports, a Temporal dev server, fake agents."""
