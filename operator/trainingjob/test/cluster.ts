// The TrainingJob tests' harness now lives in test/support/operator-harness.ts; this name stays for work in flight.
export * from '../../../test/support/operator-harness.ts';
