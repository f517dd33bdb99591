// Builders for TrainingJob and pod objects as the API server would return them, for the pure tests.
import { controllerReference } from '../../engine/keys.ts';
import type { KubeObject } from '../../engine/types.ts';
import { desiredPod } from '../pods.ts';
import type { TrainingJob, TrainingJobSpec, TrainingJobStatus } from '../resource.ts';

export function trainingJob(spec: Partial<TrainingJobSpec> = {}, status?: TrainingJobStatus, name = 'credit'): TrainingJob {
  return {
    apiVersion: 'loopline.dev/v1alpha1',
    kind: 'TrainingJob',
    metadata: { name, namespace: 'ml', uid: 'uid-1', generation: 1 },
    spec: { model: 'credit-risk', image: 'loopline/example-trainer', ...spec },
    status,
  };
}

type PodState =
  | { phase: 'Pending' }
  | { phase: 'Running' }
  | { phase: 'Succeeded'; message?: string; finishedAt?: string }
  | { phase: 'Failed'; exitCode?: number; message?: string; finishedAt?: string };

/** The pod the operator would have created for `rank` of `attempt`, in the given state. */
export function pod(job: TrainingJob, attempt: number, rank: number, state: PodState, extra: { deleting?: boolean } = {}): KubeObject {
  const desired = desiredPod(job, controllerReference(job as KubeObject), attempt, rank) as KubeObject;
  const container: Record<string, unknown> = { name: 'trainer' };
  if (state.phase === 'Running') container.state = { running: { startedAt: '2030-01-01T00:00:00Z' } };
  if (state.phase === 'Succeeded' || state.phase === 'Failed') {
    container.state = {
      terminated: {
        exitCode: state.phase === 'Succeeded' ? 0 : (state.exitCode ?? 1),
        reason: state.phase === 'Succeeded' ? 'Completed' : 'Error',
        message: state.message,
        finishedAt: state.finishedAt ?? '2030-01-01T00:00:10Z',
      },
    };
  }
  return {
    ...desired,
    metadata: {
      ...desired.metadata,
      uid: `pod-${attempt}-${rank}`,
      creationTimestamp: '2030-01-01T00:00:00Z' as unknown as Date,
      ...(extra.deleting ? { deletionTimestamp: '2030-01-01T00:00:20Z' as unknown as Date } : {}),
    },
    status: { phase: state.phase, containerStatuses: container.state ? [container] : [] },
  };
}
