"""preflight.report"""
