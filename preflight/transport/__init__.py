"""preflight.transport"""
