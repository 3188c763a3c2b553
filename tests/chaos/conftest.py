"""The chaos tests start their own stack (chaos.stack); they share nothing with other tests."""
