"""MedAIClassify: class probabilities of an image with the MedAI engine, and a saliency map of why.

Only slicer and the helpers shared with MedAISeg (MedAISegLib: slicer, qt, vtk) are imported when Slicer loads this
file; the engine (``medai``) is imported inside the functions that use it.
"""

import slicer
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLTableNode
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import parameterNodeWrapper
from slicer.ScriptedLoadableModule import *
from slicer.util import VTKObservationMixin

from MedAISegLib.engine import EngineLogic
from MedAISegLib.gui import ParameterNodeGui, showError

#: Opacity of the saliency map drawn over the image.
SALIENCY_OPACITY = 0.4


class MedAIClassify(ScriptedLoadableModule):
    """The module's description for Slicer's module list."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("MedAI Classification")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Segmentation")]
        self.parent.dependencies = ["MedAISeg"]  # MedAISegLib: the parameter node binding, the dependency set-up
        self.parent.contributors = ["MedAI contributors"]
        self.parent.helpText = _("""
Classifies an image (an X-ray, a slice or a volume) with a model of the MedAI catalog: the class probabilities
go to a table and a saliency map, overlaid on the image, shows which regions drove the decision.
""")
        self.parent.acknowledgementText = _("""
Built on the 3D Slicer scripted module template (Jean-Christophe Fillion-Robin, Kitware; Andras Lasso, PerkLab;
Steve Pieper, Isomics) and on the PyTorch extension.
""")


@parameterNodeWrapper
class MedAIClassifyParameterNode:
    """The module's parameters, saved with the scene.

    inputVolume - the image to classify.
    model - the id of the catalog model card.
    showSaliency - compute the saliency map and overlay it on the image.
    resultsTable - the class probabilities of the last run.
    saliencyVolume - the saliency map of the last run.
    """

    inputVolume: vtkMRMLScalarVolumeNode
    model: str = "image-type"
    showSaliency: bool = True
    resultsTable: vtkMRMLTableNode
    saliencyVolume: vtkMRMLScalarVolumeNode


class MedAIClassifyWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """The module panel: choose an image and a model, Apply, read the table and the top class."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self.gui = None  # MedAISeg.ParameterNodeGui
        self._problem = ""  # why the engine cannot classify here

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/MedAIClassify.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = MedAIClassifyLogic()
        self._problem = self.logic.engineProblem()
        self.gui = ParameterNodeGui(self.ui, "classification", self.updateGUI)

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.showSaliencyCheckBox.connect("toggled(bool)", self.showSaliency)
        if self._problem:
            self.ui.statusLabel.text = self._problem
        self.enter()

    def cleanup(self) -> None:
        self.gui.setNode(None)
        self.removeObservers()

    def enter(self) -> None:
        self.gui.setNode(self.logic.getParameterNode())

    def exit(self) -> None:
        self.gui.setNode(None)

    def onSceneStartClose(self, caller, event) -> None:
        self.gui.setNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.enter()

    def updateGUI(self) -> None:
        """Enable Apply when it can run; show the last results of the parameter node."""
        node = self.gui.node
        ready = bool(node.inputVolume and node.model) and not self._problem
        self.ui.applyButton.enabled = ready
        self.ui.resultsTableView.setMRMLTableNode(node.resultsTable)
        self.ui.topClassLabel.text = topClass(node.resultsTable) if node.resultsTable else ""

    def onApplyButton(self) -> None:
        p = self.gui.node
        try:
            self.gui.ensureDependencies()
            self.ui.statusLabel.text = _("Classifying...")
            with slicer.util.WaitCursor():
                table, saliency = self.logic.classify(p.inputVolume, model=p.model, saliency=p.showSaliency)
        except Exception as error:
            showError(self.ui.statusLabel, error)
            return
        with slicer.util.NodeModify(p.parameterNode):
            p.resultsTable = table
            p.saliencyVolume = saliency
        self.showSaliency(p.showSaliency)
        warnings = self.logic.last_warnings  # e.g. the image looks like CT but the model expects MR
        self.ui.statusLabel.text = _("Done.") if not warnings else _("Done. Warning: {warnings}").format(
            warnings=" ".join(warnings))

    def showSaliency(self, show: bool) -> None:
        """Overlay the last saliency map on the image, or remove it."""
        node = self.gui.node
        if node is None or node.saliencyVolume is None:
            return
        if show:
            slicer.util.setSliceViewerLayers(background=node.inputVolume, foreground=node.saliencyVolume,
                                             foregroundOpacity=SALIENCY_OPACITY)
        else:
            slicer.util.setSliceViewerLayers(foreground=None)


class MedAIClassifyLogic(EngineLogic, ScriptedLoadableModuleLogic):
    """The module's logic: the engine's ``medai.slicer.MedAIClassifyLogic``, created on first use.

    As in MedAISeg, the engine is not imported when Slicer loads this file: every attribute this class does not
    define (``classify``, ...) is looked up on one engine logic created on first use
    (:class:`MedAISegLib.engine.EngineLogic`). The widget expects ``classify(volumeNode, model=ID, saliency=BOOL)``
    to return ``(tableNode, saliencyVolumeNode or None)``, the table holding one row a class, best first, with
    the class name in column 0 and its probability (0..1) in column 1.
    """

    engineModule = "medai.slicer"
    engineClassName = "MedAIClassifyLogic"

    def getParameterNode(self):
        return MedAIClassifyParameterNode(super().getParameterNode())

    def engineProblem(self) -> str:
        """Why classification cannot run here, or "" when it can."""
        try:
            self.engine
        except ImportError as error:
            return _("The classification engine is not installed in this version of MedAI ({error}).").format(
                error=error)
        return ""


def topClass(table) -> str:
    """The first row of a results table as "name (probability %)"."""
    if table.GetNumberOfRows() == 0:
        return ""
    return f"{table.GetCellText(0, 0)} ({100 * float(table.GetCellText(0, 1)):.1f} %)"


class MedAIClassifyTest(ScriptedLoadableModuleTest):
    """Classifies a real MRI (Slicer's MRHead sample) with the engine; fails while the engine is missing."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_classifyMRHead()

    def test_classifyMRHead(self):
        import SampleData

        logic = MedAIClassifyLogic()
        problem = logic.engineProblem()
        self.assertEqual(problem, "", problem)
        inputVolume = SampleData.downloadSample("MRHead")
        table, saliency = logic.classify(inputVolume, model="image-type", saliency=True)

        rows = table.GetNumberOfRows()
        self.assertGreater(rows, 1)
        probabilities = [float(table.GetCellText(row, 1)) for row in range(rows)]
        self.assertAlmostEqual(sum(probabilities), 1.0, places=3)
        self.assertEqual(probabilities, sorted(probabilities, reverse=True))
        self.assertTrue(topClass(table))
        self.assertIsNotNone(saliency)
        self.assertEqual(saliency.GetImageData().GetDimensions(), inputVolume.GetImageData().GetDimensions())
        self.delayDisplay("Test passed")
