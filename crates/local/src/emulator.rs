//! Every call to the emulator (moto, LocalStack or AWS itself): reading what is deployed,
//! the queue's counts, and writing the service's desired count and task records.

use crate::deployed::{
    self, Dimension, MetricAlarm, MetricQuery, ScalableTarget, ScalingPolicy, StepAdjustment,
};
use crate::setup::ScalingSetup;
use aws_config::SdkConfig;
use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace};
use aws_sdk_sqs::types::QueueAttributeName;

#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error("{call}: {message}")]
    Call { call: &'static str, message: String },
    #[error("{0}")]
    Deployed(#[from] deployed::DeployedError),
    #[error("no scalable target for {0} (register one, or pass --config)")]
    NoTarget(String),
    #[error("service {service} not found in cluster {cluster}")]
    NoService { cluster: String, service: String },
}

fn call_err<E: std::error::Error>(call: &'static str) -> impl Fn(E) -> EmulatorError {
    move |e| EmulatorError::Call {
        call,
        // The SDK's Display says only "service error"; the debug chain names the cause.
        message: aws_sdk_sqs::error::DisplayErrorContext(e).to_string(),
    }
}

/// Queue counts from `GetQueueAttributes`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueCounts {
    pub visible: u64,
    pub not_visible: u64,
    pub delayed: u64,
}

/// What `DescribeServices` says about the service.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceInfo {
    pub desired: u32,
    pub running: u32,
    pub task_definition: Option<String>,
    pub network: Option<aws_sdk_ecs::types::NetworkConfiguration>,
}

#[derive(Debug, Clone)]
pub struct Emulator {
    aas: aws_sdk_applicationautoscaling::Client,
    cw: aws_sdk_cloudwatch::Client,
    sqs: aws_sdk_sqs::Client,
    ecs: aws_sdk_ecs::Client,
}

/// The SDK configuration for every client: the environment's (so `AWS_ENDPOINT_URL` works),
/// with an explicit endpoint and region when given (else the environment's, else
/// us-east-1).
pub async fn sdk_config(endpoint: Option<&str>, region: Option<&str>) -> SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(e) = endpoint {
        loader = loader.endpoint_url(e);
    }
    loader = match region {
        Some(r) => loader.region(aws_config::Region::new(r.to_owned())),
        None => loader.region(
            aws_config::meta::region::RegionProviderChain::default_provider().or_else("us-east-1"),
        ),
    };
    loader.load().await
}

/// `service/<cluster>/<service>`: the scalable target's resource id.
pub fn resource_id(cluster: &str, service: &str) -> String {
    format!("service/{cluster}/{service}")
}

impl Emulator {
    pub fn new(config: &SdkConfig) -> Self {
        Emulator {
            aas: aws_sdk_applicationautoscaling::Client::new(config),
            cw: aws_sdk_cloudwatch::Client::new(config),
            sqs: aws_sdk_sqs::Client::new(config),
            ecs: aws_sdk_ecs::Client::new(config),
        }
    }

    /// Reads the scalable target, its step policies and the alarms that invoke them.
    pub async fn read_setup(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<ScalingSetup, EmulatorError> {
        let rid = resource_id(cluster, service);
        let targets = self
            .aas
            .describe_scalable_targets()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_ids(&rid)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .send()
            .await
            .map_err(call_err("DescribeScalableTargets"))?;
        let target = targets
            .scalable_targets()
            .first()
            .map(|t| ScalableTarget {
                resource_id: t.resource_id().to_owned(),
                min_capacity: t.min_capacity(),
                max_capacity: t.max_capacity(),
            })
            .ok_or_else(|| EmulatorError::NoTarget(rid.clone()))?;

        let mut policies = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .aas
                .describe_scaling_policies()
                .service_namespace(ServiceNamespace::Ecs)
                .resource_id(&rid)
                .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                .set_next_token(token)
                .send()
                .await
                .map_err(call_err("DescribeScalingPolicies"))?;
            policies.extend(page.scaling_policies().iter().map(|p| ScalingPolicy {
                policy_arn: p.policy_arn().to_owned(),
                policy_name: p.policy_name().to_owned(),
                policy_type: p.policy_type().as_str().to_owned(),
                step_scaling_policy_configuration: p.step_scaling_policy_configuration().map(|c| {
                    deployed::StepConfiguration {
                        adjustment_type: c.adjustment_type().map(|a| a.as_str().to_owned()),
                        cooldown: c.cooldown(),
                        step_adjustments: c
                            .step_adjustments()
                            .iter()
                            .map(|s| StepAdjustment {
                                metric_interval_lower_bound: s.metric_interval_lower_bound(),
                                metric_interval_upper_bound: s.metric_interval_upper_bound(),
                                scaling_adjustment: s.scaling_adjustment(),
                            })
                            .collect(),
                    }
                }),
            }));
            token = page.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }

        let mut alarms = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .cw
                .describe_alarms()
                .set_next_token(token)
                .send()
                .await
                .map_err(call_err("DescribeAlarms"))?;
            alarms.extend(page.metric_alarms().iter().map(metric_alarm));
            token = page.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        Ok(deployed::assemble(&target, &policies, &alarms)?)
    }

    pub async fn queue_url(&self, name: &str) -> Result<String, EmulatorError> {
        let out = self
            .sqs
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
            .map_err(call_err("GetQueueUrl"))?;
        out.queue_url()
            .map(str::to_owned)
            .ok_or(EmulatorError::Call {
                call: "GetQueueUrl",
                message: format!("no URL returned for queue {name}"),
            })
    }

    /// The queue's counts, read twice and the smaller backlog kept. moto counts visible and
    /// in-flight messages in two passes over the queue without a lock, so a receive that
    /// lands between them counts its messages twice (25 queued jobs read as 30 while five
    /// workers take theirs) and would scale out for jobs that do not exist. A receive during
    /// both of two back-to-back reads is rare; SQS itself answers from one snapshot.
    pub async fn queue_counts(&self, url: &str) -> Result<QueueCounts, EmulatorError> {
        let first = self.queue_counts_once(url).await?;
        let second = self.queue_counts_once(url).await?;
        let backlog = |c: &QueueCounts| c.visible + c.not_visible;
        Ok(if backlog(&second) <= backlog(&first) {
            second
        } else {
            first
        })
    }

    async fn queue_counts_once(&self, url: &str) -> Result<QueueCounts, EmulatorError> {
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .map_err(call_err("GetQueueAttributes"))?;
        let get = |name: QueueAttributeName| {
            out.attributes()
                .and_then(|a| a.get(&name))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Ok(QueueCounts {
            visible: get(QueueAttributeName::ApproximateNumberOfMessages),
            not_visible: get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
            delayed: get(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
        })
    }

    pub async fn service(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<ServiceInfo, EmulatorError> {
        let out = self
            .ecs
            .describe_services()
            .cluster(cluster)
            .services(service)
            .send()
            .await
            .map_err(call_err("DescribeServices"))?;
        let s = out
            .services()
            .first()
            .ok_or_else(|| EmulatorError::NoService {
                cluster: cluster.to_owned(),
                service: service.to_owned(),
            })?;
        Ok(ServiceInfo {
            desired: u32::try_from(s.desired_count()).unwrap_or(0),
            running: u32::try_from(s.running_count()).unwrap_or(0),
            task_definition: s.task_definition().map(str::to_owned),
            network: s.network_configuration().cloned(),
        })
    }

    /// `UpdateService --desired-count`: what Application Auto Scaling does to scale.
    pub async fn set_desired(
        &self,
        cluster: &str,
        service: &str,
        desired: u32,
    ) -> Result<(), EmulatorError> {
        self.ecs
            .update_service()
            .cluster(cluster)
            .service(service)
            .desired_count(i32::try_from(desired).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(call_err("UpdateService"))?;
        Ok(())
    }

    /// Records a started task (`RunTask`), so `list-tasks`/`describe-tasks` show it. The
    /// emulator assigns its own task ARN; the local task id is kept as a tag.
    ///
    /// moto 5.2.5 answers HTTP 500 here for the project's stack: its RunTask needs `memory`
    /// on every container definition, and for `awsvpc` task definitions it fails building
    /// the network interface (`privateDnsName`). Hence recording is opt-in.
    pub async fn record_start(
        &self,
        cluster: &str,
        service: &str,
        info: &ServiceInfo,
        task_id: &str,
    ) -> Result<String, EmulatorError> {
        let td = info.task_definition.as_deref().ok_or(EmulatorError::Call {
            call: "RunTask",
            message: format!("service {service} has no task definition"),
        })?;
        let out = self
            .ecs
            .run_task()
            .cluster(cluster)
            .task_definition(td)
            .launch_type(aws_sdk_ecs::types::LaunchType::Fargate)
            .set_network_configuration(info.network.clone())
            .group(format!("service:{service}"))
            .started_by("czero-local")
            .tags(
                aws_sdk_ecs::types::Tag::builder()
                    .key("czero:task-id")
                    .value(task_id)
                    .build(),
            )
            .send()
            .await
            .map_err(call_err("RunTask"))?;
        out.tasks()
            .first()
            .and_then(|t| t.task_arn())
            .map(str::to_owned)
            .ok_or(EmulatorError::Call {
                call: "RunTask",
                message: "no task returned".into(),
            })
    }

    /// Records a stopped task (`StopTask` with the reason ECS would give).
    pub async fn record_stop(
        &self,
        cluster: &str,
        task_arn: &str,
        reason: &str,
    ) -> Result<(), EmulatorError> {
        self.ecs
            .stop_task()
            .cluster(cluster)
            .task(task_arn)
            .reason(reason)
            .send()
            .await
            .map_err(call_err("StopTask"))?;
        Ok(())
    }
}

fn dims(d: &[aws_sdk_cloudwatch::types::Dimension]) -> Vec<Dimension> {
    d.iter()
        .map(|d| Dimension {
            name: d.name().unwrap_or_default().to_owned(),
            value: d.value().unwrap_or_default().to_owned(),
        })
        .collect()
}

fn metric_alarm(a: &aws_sdk_cloudwatch::types::MetricAlarm) -> MetricAlarm {
    MetricAlarm {
        alarm_name: a.alarm_name().unwrap_or_default().to_owned(),
        alarm_actions: a.alarm_actions().to_vec(),
        actions_enabled: a.actions_enabled(),
        threshold: a.threshold(),
        comparison_operator: a.comparison_operator().map(|c| c.as_str().to_owned()),
        evaluation_periods: a.evaluation_periods(),
        datapoints_to_alarm: a.datapoints_to_alarm(),
        namespace: a.namespace().map(str::to_owned),
        metric_name: a.metric_name().map(str::to_owned),
        dimensions: dims(a.dimensions()),
        period: a.period(),
        metrics: a
            .metrics()
            .iter()
            .map(|m| MetricQuery {
                id: m.id().unwrap_or_default().to_owned(),
                expression: m.expression().map(str::to_owned),
                return_data: m.return_data(),
                metric_stat: m.metric_stat().map(|s| deployed::MetricStat {
                    metric: deployed::Metric {
                        namespace: s.metric().and_then(|x| x.namespace()).map(str::to_owned),
                        metric_name: s.metric().and_then(|x| x.metric_name()).map(str::to_owned),
                        dimensions: s.metric().map(|x| dims(x.dimensions())).unwrap_or_default(),
                    },
                    period: s.period(),
                    stat: s.stat().map(str::to_owned),
                }),
            })
            .collect(),
    }
}
