"""CloudFormation's part for custom resources, played on moto's stacks where moto leaves it out."""
