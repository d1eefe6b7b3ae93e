"""Loss-sharpness estimation (lambda_max, Hessian trace)."""
