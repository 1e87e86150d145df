"""Exam queues: stations, the exam catalogue, queue entries, routing and estimates."""
