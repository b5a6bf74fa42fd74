"""preflight.collect"""
