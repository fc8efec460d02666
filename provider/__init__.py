"""CloudFormation custom resource provider for Qualys AWS connectors."""
