"""Starting a Step Functions execution (the simulation job's state machine).

An execution is named by the job id: a Standard workflow starts a name once. Starting it again
with the same input while it runs answers as the first start did; once it ended, or with other
input, AWS answers ExecutionAlreadyExists. Either way the job has (had) its one execution, so a
retried start is harmless.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from shared.adapters import aws


class StateMachine(aws.AwsPort):
    service = "stepfunctions"

    def __init__(self, arn: str, client: Any = None) -> None:
        self.arn = arn
        super().__init__(client)

    def start(self, name: str, given: dict[str, Any]) -> None:
        try:
            self.client.start_execution(stateMachineArn=self.arn, name=name, input=json.dumps(given))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
                raise
