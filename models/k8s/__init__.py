"""Kubernetes control plane (issue 16). So far: the Horizontal Pod Autoscaler's algorithm
(:mod:`models.k8s.hpa`), pure functions held to the upstream test tables, no control loop yet; and the
API server's Priority and Fairness (:mod:`models.k8s.apf`, :mod:`models.k8s.queueset`,
:mod:`models.k8s.apf_alloc`, :mod:`models.k8s.apf_config`, :mod:`models.k8s.shufflesharding`), model kind
``k8s.apiserver`` (:mod:`models.k8s.apiserver_model`)."""
