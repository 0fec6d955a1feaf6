// The seed's S3 policies, as the README documents them, for MinIO users the tests create.
const OBJECT_ACTIONS = ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'];

/** The seed's IAM policy for the agent's user: objects of the bucket, and listing it. */
export const seedIamPolicy = (bucket: string) => ({
  Version: '2012-10-17',
  Statement: [
    {
      Effect: 'Allow',
      Action: [...OBJECT_ACTIONS, 's3:ListBucket'],
      Resource: [`arn:aws:s3:::${bucket}`, `arn:aws:s3:::${bucket}/*`],
    },
  ],
});

/** The seed's per-project bucket policy: objects of one namespace, no ListBucket. */
export const perProjectPolicy = (bucket: string, actions = OBJECT_ACTIONS) => ({
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Action: actions, Resource: [`arn:aws:s3:::${bucket}/project-a/*`] }],
});

/** The seed's IAM policy with one action denied on one key. */
export const allowAllBut = (bucket: string, deny: { action: string; key: string }) => ({
  Version: '2012-10-17',
  Statement: [
    ...seedIamPolicy(bucket).Statement,
    { Effect: 'Deny', Action: [deny.action], Resource: [`arn:aws:s3:::${bucket}/${deny.key}`] },
  ],
});
