import { ApiException } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { ApiError, codeForStatus, isApiError, toApiError } from '../../../controller/kube/api-error.js';

describe('toApiError', () => {
  it('maps client-node ApiException statuses to codes and keeps the apiserver message', () => {
    const body = { kind: 'Status', message: 'checkpointreplicasets.checkpoint.dev "web" not found', reason: 'NotFound', code: 404 };
    const err = toApiError(new ApiException(404, 'Unknown API Status Code!', body, {}), 'get checkpointreplicasets ns/web');
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ code: 'NotFound', status: 404, reason: 'NotFound' });
    expect(err.message).toBe('get checkpointreplicasets ns/web: checkpointreplicasets.checkpoint.dev "web" not found (HTTP 404)');
    expect(isApiError(err, 'NotFound')).toBe(true);
    expect(isApiError(err, 'Conflict')).toBe(false);
  });

  it('reads a Status body that arrives as a JSON string', () => {
    const err = toApiError(new ApiException(409, 'x', JSON.stringify({ message: 'the object has been modified', reason: 'Conflict' }), {}), 'update');
    expect(err).toMatchObject({ code: 'Conflict', reason: 'Conflict' });
    expect(err.message).toContain('the object has been modified');
  });

  it('classifies every status family', () => {
    expect([404, 409, 410, 401, 403, 400, 422, 429, 500, 503, 418].map(codeForStatus)).toEqual([
      'NotFound',
      'Conflict',
      'Gone',
      'Forbidden',
      'Forbidden',
      'Invalid',
      'Invalid',
      'Unavailable',
      'Unavailable',
      'Unavailable',
      'Unknown',
    ]);
  });

  it('treats the Watch statusCode errors and network errors as the apiserver speaks them', () => {
    expect(toApiError(Object.assign(new Error('Gone'), { statusCode: 410 }), 'watch')).toMatchObject({ code: 'Gone', status: 410 });
    const refused = toApiError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:16443'), { code: 'ECONNREFUSED' }), 'list');
    expect(refused).toMatchObject({ code: 'Unavailable', status: undefined, retryable: true });
    const nested = toApiError(Object.assign(new Error('fetch failed'), { cause: { code: 'ECONNRESET' } }), 'list');
    expect(nested.code).toBe('Unavailable');
    expect(toApiError('weird', 'x')).toMatchObject({ code: 'Unknown', message: 'x: weird' });
  });

  it('passes an ApiError through unchanged', () => {
    const e = new ApiError('Forbidden', 'no', 403);
    expect(toApiError(e, 'again')).toBe(e);
  });
});
